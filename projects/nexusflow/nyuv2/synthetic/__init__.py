"""Synthetic NYUv2-like rooms: procedural furniture, ray casting with a pinhole camera, shading."""
from .generator import generate_synthetic_nyuv2, render_sample, sample_rng
from .raycast import camera_matrix, pixel_rays

__all__ = ['generate_synthetic_nyuv2', 'render_sample', 'sample_rng', 'camera_matrix', 'pixel_rays']
