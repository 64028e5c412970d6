# synth_geo_table_noleak_bev100.py with one pretraining chain per seed: seed k of every row starts from a chain
# trained with seed k (work_dirs/reproduce/<this protocol>/pretrain/seed<k>, pretrain_clips/seed<k>), so the seed std
# of the table covers the pretraining too. The shared-chain protocol's seeds differ only in the rows' fine-tuning;
# a chain retrained on another machine changed what transfers to the unlabelled city as much as the whole seed spread
# of the fine-tuning (docs/reproduction/README.md, eighth and ninth sessions). Costs a chain (about 42 min on 2 cores)
# per seed on top of the rows (seeds 0 and 1 measured, docs/reproduction/README.md, tenth session):
#   python tools/reproduce.py configs/uniad_nexusflow/reproduce/synth_geo_table_noleak_bev100_perseed.py \
#       --rows full baseline phase2_control nexusflow_2p --seeds 0 1 2
_base_ = ['./synth_geo_table_noleak_bev100.py']
pretrain = dict(per_seed=True)
