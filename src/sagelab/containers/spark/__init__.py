"""What SageMaker's Spark processing image and an EMR step's `spark-submit` do, on local Spark.

A PySparkProcessor or SparkJarProcessor job's ContainerEntrypoint is `smspark-submit ...`; an
EMRStep's `command-runner.jar` runs `spark-submit ...` on the cluster. The local engine runs both
as `python3 -m sagelab.containers.spark --store STORE smspark-submit|spark-submit ...` (`submit`,
`configuration`), which needs pyspark (the `spark` extra) and Java 17+.
"""

COMMAND = ("python3", "-m", "sagelab.containers.spark")
