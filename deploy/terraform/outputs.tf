# What the Kubernetes prod overlay needs (deploy/k8s): endpoints for the ConfigMap, and secret ARNs
# for the ExternalSecret that fills the Secret (docs/operations/aws.md).

output "database_host" {
  description = "RDS endpoint host name (CIRCULATE_DATABASE_URL's host)."
  value       = aws_db_instance.circulate.address
}

output "database_port" {
  description = "RDS port."
  value       = aws_db_instance.circulate.port
}

output "database_name" {
  description = "Database name (CIRCULATE_DATABASE_URL's path)."
  value       = aws_db_instance.circulate.db_name
}

output "database_secret_arn" {
  description = "Secrets Manager ARN of the RDS-managed master credentials (JSON: username, password)."
  value       = aws_db_instance.circulate.master_user_secret[0].secret_arn
}

output "amqp_endpoint" {
  description = "The broker cluster's AMQPS endpoint, without credentials."
  value       = local.amqp_endpoint
}

output "rabbitmq_management_url" {
  description = "The broker's management API (CIRCULATE_RABBITMQ_MANAGEMENT_URL)."
  value       = aws_mq_broker.circulate.instances[0].console_url
}

output "rabbitmq_secret_arn" {
  description = "Secrets Manager ARN of the broker credentials (JSON: username, password, amqp_url, management_url)."
  value       = aws_secretsmanager_secret.rabbitmq.arn
}

output "kms_key_arn" {
  description = "The customer-managed key that encrypts the database, the secrets and the logs."
  value       = aws_kms_key.circulate.arn
}

output "secret_reader_policy_json" {
  description = "IAM policy to attach to the role that reads the secrets into the cluster (External Secrets Operator)."
  value       = data.aws_iam_policy_document.read_secrets.json
}

output "database_security_group_id" {
  description = "Security group of PostgreSQL (admits workload_security_group_ids on 5432)."
  value       = aws_security_group.database.id
}

output "broker_security_group_id" {
  description = "Security group of RabbitMQ (admits workload_security_group_ids on 5671 and 443)."
  value       = aws_security_group.broker.id
}
