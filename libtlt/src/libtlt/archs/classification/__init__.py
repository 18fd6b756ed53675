"""Image classification: backbones with a softmax head (000 §7.1, §8.3; 003).

Import-light: ``architecture`` (the registered ``ClassificationArchitecture``) imports TensorFlow
only inside the methods that build models or datasets.
"""
