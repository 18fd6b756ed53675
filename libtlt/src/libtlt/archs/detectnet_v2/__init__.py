"""DetectNet_v2: grid-based coverage + bbox detector (000 §7.2).

Import-light: ``architecture`` (the registered ``DetectNetV2Architecture`` and the helpers tlt-evaluate,
tlt-infer and tlt-export use) imports TensorFlow only inside the functions that build models or datasets;
spec validation lives in ``validation``.
"""
