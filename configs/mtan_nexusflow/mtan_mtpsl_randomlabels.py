# MTPSL in its own "random labels" setting (MTPSL Table 1 "MTPSL", random: 34.26 / 0.5787 / 31.06 on SegNet). To use
# MTPSL's published mask instead of the seeded one: train_dataloader.dataset.label_mask_file=<randomlabels.pth>.
_base_ = ['./mtan_mtpsl_cluster.py']
train_dataloader = dict(dataset=dict(protocol='randomlabels'))
