"""Conversion of official checkpoints (BEVFormer, UniAD, FCOS3D; mmdet3d 0.17 code bases) into this project's
module tree. Pure tensor code: no engine, no model building (the tools in ``tools/model_converters/`` do that)."""
from .box_code import track_reg_rows_017_to_1x
from .deform_attn import fold_into_bias, keep_level
from .official import SOURCES, convert_official
from .state_dict import ConversionError, ConversionReport, Rule, apply_rules

__all__ = ['track_reg_rows_017_to_1x', 'keep_level', 'fold_into_bias', 'SOURCES', 'convert_official',
           'ConversionError', 'ConversionReport', 'Rule', 'apply_rules']
