"""NYUv2 with MTAN: the N-task (seg / depth / normal) benchmark of the NexusFlow paper (Sec. 4.2, App. B).

Importing it registers ``NYUv2Dataset`` (DATASETS), ``LoadNYUv2Sample`` / ``RandomScaleCrop`` / ``PackNYUv2Inputs``
(TRANSFORMS), ``MTANMultiTask`` / ``MTANSegNet`` / the three heads / ``NYUv2DataPreprocessor`` (MODELS) and
``NYUv2Metric`` (METRICS). Data preparation: ``projects/nexusflow/nyuv2/README.md``.
"""
from . import datasets, metrics, models, protocols, synthetic  # noqa: F401
