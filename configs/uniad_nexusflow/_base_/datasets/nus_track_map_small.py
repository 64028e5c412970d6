# nuScenes track + map data for the mid-size preset (models/uniad_small.py): 6 cameras resized to 800x450, clips of
# 3 frames, 100x100 map canvas over +-51.2 m (1.024 m per pixel, so 1-pixel lines are about as wide as the full
# config's 2-pixel lines). Data preparation as in nus_track_map.py.
_base_ = ['./nus_track_map.py']

map_canvas_size = (100, 100)
map_line_thickness = 1
img_scale = (800, 450)
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

train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline, queue_length=queue_length)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
