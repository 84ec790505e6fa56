"""Spark: a local SparkSession for tests and small runs, and batch scoring of a Spark
DataFrame of feature rows with the exported MLflow model (the score contract of
`leadscore.serve.batch`, computed by the same scorer). Needs the `spark` extra (pyspark,
Java 17); nothing here is imported by the rest of leadscore."""
