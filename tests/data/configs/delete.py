_base_ = ['./base_onnx.py', './base_ort.py']
# _delete_ replaces the base dict instead of merging.
onnx_config = dict(_delete_=True, type='onnx', opset_version=13, save_file='model.onnx')
backend_config = dict(common_config=dict(_delete_=True, intra_op_num_threads=2))
# _delete_ on a key the base does not have is kept as is (mmengine keeps it).
new_section = dict(_delete_=True, x=1)
