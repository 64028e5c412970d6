from .ms_deform_attn import level_start_index_of, multi_scale_deformable_attn, single_level_shapes

__all__ = ['multi_scale_deformable_attn', 'level_start_index_of', 'single_level_shapes']
