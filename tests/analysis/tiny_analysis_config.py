# The tiny synthetic UniAD config shrunk further for the analysis-tool tests (a frame in well under a second on a
# CPU): 6 cameras at 160x96, a 25x25 BEV / map canvas with one encoder layer, 50 track queries over 2 decoder
# layers, 30 map queries over 1 + 1 transformer layers. Point test_dataloader.dataset.data_root at the data.
_base_ = ['../../configs/uniad_nexusflow/tiny_uniad_full.py']

img_scale = (160, 96)
bev_h, bev_w = 25, 25
map_canvas_size = (bev_h, bev_w)
test_pipeline = [
    dict(type='NexusFlowLoadMultiViewImages'),
    dict(type='NexusFlowResizeMultiViewImages', scale=img_scale),
    dict(type='NexusFlowLoadTrackAnnotations3D'),
    dict(type='NexusFlowTrackObjectRangeFilter', point_cloud_range={{_base_.point_cloud_range}}),
    dict(type='NexusFlowLoadMapAnnotations', pc_range={{_base_.point_cloud_range}}, canvas_size=map_canvas_size,
         line_thickness=1),
    dict(type='NexusFlowPackTrackMapInputs'),
]
model = dict(
    bev_encoder=dict(bev_h=bev_h, bev_w=bev_w, num_layers=1),
    track_head=dict(num_query=50, bev_h=bev_h, bev_w=bev_w, decoder=dict(num_layers=2)),
    map_head=dict(bev_h=bev_h, bev_w=bev_w, num_query=30,
                  transformer=dict(num_encoder_layers=1, num_decoder_layers=1),
                  thing_mask_head=dict(num_layers=1), stuff_mask_head=dict(num_layers=1)))
test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=test_pipeline))
