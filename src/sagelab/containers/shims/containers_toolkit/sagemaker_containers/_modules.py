"""`sagemaker_containers._modules` (`beta.framework.modules`).

The scikit-learn examples import it beside `encoders` and `worker` without calling it: in the
image it installs and runs the user's module, which sagelab's runners do themselves.
"""
