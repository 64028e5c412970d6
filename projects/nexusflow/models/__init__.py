"""Models of the plugin: the UniAD baseline (``uniad``), the NexusFlow plug-in (``nexusflow``), the PS-MTL baselines
(``psmtl``) and the parts they share (``layers``, ``ops``). Import a subpackage to register its modules (or
``projects.nexusflow.registration`` for all of them)."""
