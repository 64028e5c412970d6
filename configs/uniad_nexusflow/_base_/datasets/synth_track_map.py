# The synthetic nuScenes set (same on-disk format, same code path), sized for CPUs: 6 cameras resized to 224x128,
# clips of 3 frames, 50x50 map canvas over +-51.2 m. Create it with:
#   python tools/create_data.py synthetic --out-dir data/nuscenes-synth --scenes-per-city 4 \
#       --samples-per-scene 10 --with-infos
# DATA_ROOT=<folder> moves it (see nus_track_map.py).
_base_ = ['./nus_track_map.py']

data_root = '{{$DATA_ROOT:data/nuscenes-synth/}}'
version = 'v1.0-synth'
train_ann_file = 'nuscenes_infos_temporal_train.pkl'  # relative to data_root
val_ann_file = 'nuscenes_infos_temporal_val.pkl'
map_canvas_size = (50, 50)
map_line_thickness = 1
img_scale = (224, 128)
queue_length = 3
point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]

train_pipeline = [
    dict(type='NexusFlowLoadMultiViewImages'),
    dict(type='NexusFlowResizeMultiViewImages', scale=img_scale),
    dict(type='NexusFlowLoadTrackAnnotations3D'),
    dict(type='NexusFlowTrackObjectRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='NexusFlowLoadMapAnnotations', pc_range=point_cloud_range, canvas_size=map_canvas_size,
         line_thickness=map_line_thickness),
    dict(type='NexusFlowPackTrackMapInputs'),
]
test_pipeline = train_pipeline

train_dataloader = dict(
    num_workers=2,
    dataset=dict(dataset=dict(data_root=data_root, ann_file=train_ann_file, version=version,
                              pipeline=train_pipeline, queue_length=queue_length)))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root=data_root, ann_file=val_ann_file, version=version, pipeline=test_pipeline))
test_dataloader = val_dataloader
