from .ms_deform_attn import level_start_index_of, multi_scale_deformable_attn

__all__ = ['multi_scale_deformable_attn', 'level_start_index_of']
