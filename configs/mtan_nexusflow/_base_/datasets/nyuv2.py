# NYUv2 as preprocessed by MTAN (795 train / 654 val images of 288x384, 13 classes, depth, normals), loaded as
# MTPSL does: RandomScaleCrop (scales 1.0 / 1.2 / 1.5, depth divided by the scale, no flip) for training, none at
# test; batch 2, training drops the last incomplete batch. Data preparation: projects/nexusflow/nyuv2/README.md.
# `protocol` decides which task labels each training image keeps: 'full', 'cluster' (NexusFlow), 'onelabel' or
# 'randomlabels' (MTPSL); evaluation always uses every label.
dataset_type = 'NexusFlowNYUv2Dataset'
data_root = 'data/nyuv2/'

train_pipeline = [
    dict(type='NexusFlowLoadNYUv2Sample'),
    dict(type='NexusFlowRandomScaleCrop', scales=(1.0, 1.2, 1.5)),
    dict(type='NexusFlowPackNYUv2Inputs'),
]
test_pipeline = [dict(type='NexusFlowLoadNYUv2Sample'), dict(type='NexusFlowPackNYUv2Inputs')]

train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', protocol='full', protocol_seed=0,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', protocol='full', pipeline=test_pipeline,
                 test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='NexusFlowNYUv2Metric')
test_evaluator = val_evaluator
