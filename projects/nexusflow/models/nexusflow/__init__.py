"""The NexusFlow plug-in: feature taps, aggregators, affine couplings, alignment losses."""
from .aggregators import LearnedQueryAggregator, MLPAggregator, QuerySetAggregator
from .align_loss import align_loss, center_align, mean_pair_distance, pairwise_align
from .coupling import AffineCoupling, AffineCouplingStack, MLPStack
from .deformable_aggregator import DeformableAggregator
from .nexusflow import NexusFlow
from .tap_adapters import (BEVTapAdapter, FeatureMapTapAdapter, QueryTapAdapter, TapOutput,
                           build_tap_adapter)
from .taps import TapPlugin

__all__ = [
    'TapPlugin', 'TapOutput', 'BEVTapAdapter', 'FeatureMapTapAdapter', 'QueryTapAdapter', 'build_tap_adapter',
    'MLPAggregator', 'QuerySetAggregator', 'DeformableAggregator', 'LearnedQueryAggregator',
    'AffineCoupling', 'AffineCouplingStack', 'MLPStack', 'align_loss',
    'center_align', 'pairwise_align', 'mean_pair_distance', 'NexusFlow'
]
