# Evaluation of an official UniAD stage-1 checkpoint (uniad_base_track_map.pth, converted with
# tools/model_converters/uniad_to_nexusflow.py SRC DST --config configs/uniad_nexusflow/uniad_full_official_eval.py)
# under the settings it was trained with: the model's compat='uniad' (BEVFormer's CAN-bus deltas, rotated previous
# BEV, shifted TSA grid, layer-0 current queue; first training frame as its own history; the map transformer's
# 4-level attentions on the one BEV level and the mask decoders' ReLU masks) and UniAD's map-GT protocol. Test only:
#   python tools/test.py configs/uniad_nexusflow/uniad_full_official_eval.py ckpts/uniad_base_track_map_nexusflow.pth
# Not run here (needs nuScenes trainval and the official checkpoint); see the README table for what still differs.
_base_ = ['./uniad_full.py']
model = dict(compat='uniad')
point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
test_pipeline = [
    dict(type='NexusFlowLoadMultiViewImages'),
    dict(type='NexusFlowResizeMultiViewImages', scale=(1600, 900)),
    dict(type='NexusFlowLoadTrackAnnotations3D'),
    dict(type='NexusFlowTrackObjectRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='NexusFlowLoadMapAnnotations', pc_range=point_cloud_range, canvas_size=(200, 200), line_thickness=2,
         protocol='uniad'),
    dict(type='NexusFlowPackTrackMapInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
