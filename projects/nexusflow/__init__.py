"""NexusFlow for UniAD: an MMDetection3D 1.x plugin.

Importing the package itself loads nothing, so that each layer can be imported alone (``core`` <- ``models.uniad``
<- plug-ins <- ``engine`` / ``analysis``; see README.md). ``projects.nexusflow.registration`` imports every part and
so registers every dataset, transform, model, metric and hook in the mmdet3d registries; configs do it through
``custom_imports=dict(imports=['projects.nexusflow.registration'])``.
"""
