# A seven-level _base_ chain: top -> level1 -> ... -> level7.
_base_ = ['./level1.py']
shared = dict(top=0, k3=33)
backend_config = dict(
    common_config=dict(fp16_mode=True),
    model_inputs=[
        dict(
            input_shapes=dict(
                input=dict(
                    min_shape=[1, 3, 224, 224],
                    opt_shape=[4, 3, 224, 224],
                    max_shape=[8, 3, 224, 224])))
    ])
