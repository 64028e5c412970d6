# Runtime of the nuScenes configs: the project's shared runtime plus the BEV track / map drawings.
_base_ = ['../../_base_/default_runtime.py']
# drawing (off): tools/test.py --show / --show-dir switch it on (engine/visualization_hook.py)
default_hooks = dict(visualization=dict(type='NexusFlowTrackMapVisualizationHook', draw=False))
# scalars and drawings go to every backend; BEV drawings: projects/nexusflow/visualization/
visualizer = dict(type='NexusFlowTrackMapLocalVisualizer')
