_base_ = './level7.py'
level6 = dict(depth=6, tag='l6')
shared = dict(k6=6)
