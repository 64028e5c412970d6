# Table B.1 (aggregator depth, couplings fixed at 3): 5-layer MLP aggregators, 3 affine couplings. (The paper's
# text fixes 3 invertible layers here, yet its 3-MLP row equals the main 4-coupling result; see the README.)
_base_ = ['../mtan_nexusflow_center.py']
nexusflow = _base_.nexusflow
nexusflow.coupling.num_layers = 3
nexusflow.tasks.seg.aggregator.depth = 5
nexusflow.tasks.depth.aggregator.depth = 5
nexusflow.tasks.normal.aggregator.depth = 5
model = dict(plugins=[nexusflow])
