"""The kinds of object a tenant stores: each is a folder of the tenant's encrypted files."""

DATASETS = "datasets"
PROFILES = "profiles"  # a dataset's column profile and preview
MODELS = "models"  # model artifacts (skops) and their ONNX compilations
PREDICTIONS = "predictions"  # outputs of batch scoring jobs
SAMPLES = "samples"  # sampled inputs of production versions (monitoring)
