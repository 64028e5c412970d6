"""NYUv2 models: the MTAN SegNet backbone, dense task heads, the multi-task model and its data preprocessor."""
from .data_preprocessor import NYUv2DataPreprocessor
from .heads import DenseTaskHead, NYUv2DepthHead, NYUv2NormalHead, NYUv2SegHead, masked_sample_mean
from .mtan_multitask import MTANMultiTask
from .mtan_segnet import AttentionGate, MTANSegNet

__all__ = ['MTANSegNet', 'AttentionGate', 'DenseTaskHead', 'NYUv2SegHead', 'NYUv2DepthHead', 'NYUv2NormalHead',
           'masked_sample_mean', 'MTANMultiTask', 'NYUv2DataPreprocessor']
