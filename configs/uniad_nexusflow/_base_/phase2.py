# Phase 2 of two-phase training (nexusflow_nuscenes.txt, Sec. 3.2): start from the phase-1 (PS-MTL baseline)
# checkpoint, freeze the image backbone, the neck and the BEV encoder, fine-tune the task-formers (+ the plug-in).
# Freezing happens when the model is built (DDP-safe); the hook keeps the frozen norm layers in eval mode.
# Configs apply it with model = dict(frozen_modules=_base_.phase2_frozen).
phase2_frozen = ['img_backbone', 'img_neck', 'bev_encoder']
custom_hooks = [dict(type='NexusFlowFreezeModulesHook', modules=phase2_frozen)]
