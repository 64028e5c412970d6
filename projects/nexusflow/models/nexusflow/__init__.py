"""The NexusFlow plug-in: aggregators, affine couplings, alignment losses (taps: ``projects.nexusflow.core``)."""
from .aggregators import LearnedQueryAggregator, MLPAggregator, QuerySetAggregator
from .align_loss import align_loss, center_align, mean_pair_distance, pairwise_align
from .coupling import AffineCoupling, AffineCouplingStack, MLPStack
from .deformable_aggregator import DeformableAggregator
from .nexusflow import NexusFlow

__all__ = [
    'MLPAggregator', 'QuerySetAggregator', 'DeformableAggregator', 'LearnedQueryAggregator',
    'AffineCoupling', 'AffineCouplingStack', 'MLPStack', 'align_loss',
    'center_align', 'pairwise_align', 'mean_pair_distance', 'NexusFlow'
]
