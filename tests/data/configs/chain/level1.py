_base_ = './level2.py'
level1 = dict(depth=1, tag='l1')
shared = dict(k1=1)
