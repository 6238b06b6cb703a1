"""Cost awareness: the instance catalog (hardware, uses, prices), estimates of what a pipeline costs on
SageMaker, instance recommendations, and the audit of what is left billing.

Data and pure functions: nothing here reaches AWS by itself. `pricing` reads AWS's price list through
the client or URL it is handed, `idle` asks AWS through the calls it is handed; the CLI and the Python
API (`sagelab.api.costs`) hand them over.
"""
