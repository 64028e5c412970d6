# UniAD stage-1 with full supervision, from ImageNet instead of BEVFormer: the caffe ResNet-101 starts from the
# detectron2 ImageNet weights (open-mmlab://detectron2/resnet101_caffe, downloaded on first use; the DCN offsets start
# at zero) and trains (frozen_stages=-1); its BN layers stay frozen, with the ImageNet statistics. Everything after
# the backbone trains from scratch, so expect a longer schedule than UniAD's 6 epochs to reach its figures.
_base_ = ['./uniad_full.py']
load_from = None
model = dict(img_backbone=dict(
    frozen_stages=-1,
    init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://detectron2/resnet101_caffe')))
