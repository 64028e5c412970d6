# MTPSL in its own "one label" setting (MTPSL Table 1 "MTPSL", one: 30.36 / 0.6088 / 32.08 on SegNet). To use
# MTPSL's published mask instead of the seeded one: train_dataloader.dataset.label_mask_file=<onelabel.pth>.
_base_ = ['./mtan_mtpsl_cluster.py']
train_dataloader = dict(dataset=dict(protocol='onelabel'))
