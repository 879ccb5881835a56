backend_config = dict(type='tract')
