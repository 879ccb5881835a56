_base_ = ['./yaml_top.yaml']
onnx_config = dict(opset_version=13)
