# Table 4 "Ours" with the pairwise alignment sum_{i<j} ||z_i - z_j||^2 (= 3 x the center loss for three tasks).
_base_ = ['./mtan_nexusflow_center.py']
nexusflow = _base_.nexusflow
nexusflow.align_loss = 'pairwise'
model = dict(plugins=[nexusflow])
