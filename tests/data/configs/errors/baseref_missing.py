_base_ = ['../baserefs/base.py']
w = _base_.nope.deeper
