"""`sagemaker_containers._transformer` (`beta.framework.transformer`).

The scikit-learn examples import it beside `encoders` and `worker` without calling it: in the
image it drives model_fn/input_fn/predict_fn/output_fn, which `sagelab.serving` does itself.
"""
