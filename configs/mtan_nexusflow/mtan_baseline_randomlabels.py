# MTAN under MTPSL's "random labels" setting (one or two task labels per image), no plug-in. To use MTPSL's
# published mask instead of the seeded one: train_dataloader.dataset.label_mask_file=<randomlabels.pth>.
_base_ = ['./mtan_full.py']
train_dataloader = dict(dataset=dict(protocol='randomlabels'))
