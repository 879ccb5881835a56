# MMDeploy's classification config, on the ndarray backend.
_base_ = ['../../../configs/mmpretrain/classification_dynamic.py', './_base_/backends/ndarray.py']
