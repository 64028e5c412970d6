# MTAN under MTPSL's "one label" setting (exactly one task label per image, tasks balanced), no plug-in. To use
# MTPSL's published mask instead of the seeded one: train_dataloader.dataset.label_mask_file=<onelabel.pth>.
_base_ = ['./mtan_full.py']
train_dataloader = dict(dataset=dict(protocol='onelabel'))
