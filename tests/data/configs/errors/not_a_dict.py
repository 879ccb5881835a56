_base_ = './base_list.py'
k = dict(a=1)
