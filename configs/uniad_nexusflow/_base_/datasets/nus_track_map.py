# nuScenes track + map data (UniAD stage-1 settings): 6 cameras at 1600x900, clips of 5 frames, 200x200 map canvas
# over +-51.2 m. Prepare it with:
#   python tools/create_data.py nuscenes --root-path data/nuscenes --version v1.0-trainval \
#       --out-dir data/nuscenes --canbus data/nuscenes
# The data root comes from one place: the environment variable DATA_ROOT when set (mmengine substitutes it when the
# file is parsed), else data/nuscenes/: `DATA_ROOT=/path/to/nuscenes python tools/train.py CONFIG` moves every
# loader, and the metrics follow the test dataset (they read its root and info file from dataset_meta).
dataset_type = 'NexusFlowNuScenesTrackMapDataset'
data_root = '{{$DATA_ROOT:data/nuscenes/}}'
version = 'v1.0-trainval'
train_ann_file = 'nuscenes_infos_temporal_train.pkl'  # relative to data_root
val_ann_file = 'nuscenes_infos_temporal_val.pkl'
class_names = ['car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier', 'motorcycle', 'bicycle',
               'pedestrian', 'traffic_cone']
point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
map_canvas_size = (200, 200)  # (H, W): the BEV grid of the model
map_line_thickness = 2
img_scale = (1600, 900)  # (W, H) fed to the network
queue_length = 5
geo_split = 'standard'  # map labels in Boston, track labels in Singapore; 'reversed' swaps, 'full' = oracle

train_pipeline = [
    dict(type='NexusFlowLoadMultiViewImages'),
    dict(type='NexusFlowResizeMultiViewImages', scale=img_scale),
    dict(type='NexusFlowLoadTrackAnnotations3D'),
    dict(type='NexusFlowTrackObjectRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='NexusFlowLoadMapAnnotations', pc_range=point_cloud_range, canvas_size=map_canvas_size,
         line_thickness=map_line_thickness),
    dict(type='NexusFlowPackTrackMapInputs'),
]
# Test samples carry the map GT too: MapIoUMetric reads it from the data samples.
test_pipeline = train_pipeline

train_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='nexusflow_clip_collate'),
    dataset=dict(
        type='NexusFlowGeoSplitDataset',
        split=geo_split,
        dataset=dict(type=dataset_type, data_root=data_root, ann_file=train_ann_file, version=version,
                     pipeline=train_pipeline, queue_length=queue_length, metainfo=dict(classes=class_names))))
val_dataloader = dict(
    batch_size=1,  # sequential inference: one frame per step, SceneAwareSampler keeps scenes whole and ordered
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='NexusFlowSceneAwareSampler'),
    collate_fn=dict(type='nexusflow_clip_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file=val_ann_file, version=version,
                 pipeline=test_pipeline, test_mode=True, metainfo=dict(classes=class_names)))
test_dataloader = val_dataloader

# data_root, ann_file and version of the metrics: the test dataset's. per_city=True adds a devkit tracking pass per
# city (Boston, Singapore; together as long as the overall pass) for the track/<city>/... figures.
val_evaluator = [
    dict(type='NexusFlowNuScenesTrackingMetric', per_city=True),
    dict(type='NexusFlowNuScenesDetectionMetric'),
    dict(type='NexusFlowMapIoUMetric', per_city=True),
]
test_evaluator = val_evaluator
