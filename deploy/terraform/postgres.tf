# RDS PostgreSQL: multi-AZ, encrypted with the customer key, backups with point-in-time recovery,
# deletion protection, and the settings the workers rely on in its parameter group.

resource "aws_db_parameter_group" "circulate" {
  name        = "${local.name}-${local.db_family}"
  family      = local.db_family
  description = "Circulate: connection budget, timeouts that free stuck sessions, TLS, logging"

  # Sized from the connection budget of every process (docs/operations/postgres-at-scale.md).
  parameter {
    name         = "max_connections"
    value        = tostring(var.db_max_connections)
    apply_method = "pending-reboot"
  }

  # A worker thread wedged inside a transaction holds row locks (an order, an inbox key) that every
  # redelivery of that message would wait on: end such a session after a minute.
  parameter {
    name  = "idle_in_transaction_session_timeout"
    value = tostring(var.db_idle_in_transaction_timeout_ms)
  }

  # No handler statement runs anywhere near the worker's time limit; one that does is stuck.
  parameter {
    name  = "statement_timeout"
    value = tostring(var.db_statement_timeout_ms)
  }

  # Clients must use TLS (psycopg: sslmode=verify-full with the RDS CA bundle).
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  parameter {
    name  = "log_lock_waits"
    value = "1"
  }

  parameter {
    name  = "log_autovacuum_min_duration"
    value = "10000"
  }

  # The inbox and the outbox are insert-then-delete tables: vacuum them after a small share of churn.
  parameter {
    name  = "autovacuum_vacuum_scale_factor"
    value = "0.05"
  }

  parameter {
    name         = "shared_preload_libraries"
    value        = "pg_stat_statements"
    apply_method = "pending-reboot"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "postgres" {
  for_each = toset(["postgresql", "upgrade"])

  name              = "/aws/rds/instance/${local.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.circulate.arn
}

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${local.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "circulate" {
  identifier     = local.name
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  allocated_storage     = var.db_allocated_storage_gb
  max_allocated_storage = var.db_max_allocated_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.circulate.arn

  db_name  = var.db_name
  username = var.db_master_username
  # RDS generates the password, stores it in Secrets Manager under the customer key and rotates it;
  # it never passes through Terraform's variables or this repository.
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.circulate.key_id

  multi_az               = true
  db_subnet_group_name   = aws_db_subnet_group.database.name
  vpc_security_group_ids = [aws_security_group.database.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.circulate.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  iam_database_authentication_enabled = true

  backup_retention_period   = var.db_backup_retention_days
  backup_window             = "02:00-03:00"
  maintenance_window        = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${local.name}-final"

  auto_minor_version_upgrade      = true
  enabled_cloudwatch_logs_exports = ["postgresql", "upgrade"]
  monitoring_interval             = 15
  monitoring_role_arn             = aws_iam_role.rds_monitoring.arn

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.circulate.arn
  performance_insights_retention_period = 7

  depends_on = [aws_cloudwatch_log_group.postgres, aws_iam_role_policy_attachment.rds_monitoring]
}
