variable "aws_region" {
  type        = string
  description = "AWS region of the EKS cluster, the broker and the database."
}

variable "environment" {
  type        = string
  description = "Environment name (prod, staging...), used in resource names and tags."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.environment))
    error_message = "environment must be 2-21 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "tags" {
  type        = map(string)
  description = "Extra tags on every resource (cost centre, owner)."
  default     = {}
}

# --- The existing cluster and network -----------------------------------------------------------

variable "eks_cluster_name" {
  type        = string
  description = "Name of the existing EKS cluster the API, workers and relay run in; its VPC must be vpc_id."
}

variable "vpc_id" {
  type        = string
  description = "VPC of the EKS cluster; the broker and the database get private addresses in it."
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Private subnets in at least two (better three) availability zones, for the database and the broker's nodes."

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "Multi-AZ needs private subnets in at least two availability zones."
  }
}

variable "workload_security_group_ids" {
  type        = list(string)
  description = "Security groups of the pods (security groups for pods) or nodes that run the API, workers, relay, sweeper and exporter: the only sources admitted to PostgreSQL and RabbitMQ."

  validation {
    condition     = length(var.workload_security_group_ids) >= 1
    error_message = "Name at least one workload security group; nothing else may reach the database or the broker."
  }
}

# --- KMS and logs ----------------------------------------------------------------------------------

variable "log_retention_days" {
  type        = number
  description = "Days the database and broker logs are kept in CloudWatch."
  default     = 365
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse to delete the database (and keep a final snapshot); set false only to tear down a test environment."
  default     = true
}

# --- PostgreSQL ------------------------------------------------------------------------------------

variable "db_engine_version" {
  type        = string
  description = "RDS PostgreSQL engine version; its major version picks the parameter group family."
  default     = "16.4"
}

variable "db_instance_class" {
  type        = string
  description = "RDS instance class; commits per second, not storage, size it (see docs/operations/scaling.md)."
  default     = "db.r6g.xlarge"
}

variable "db_allocated_storage_gb" {
  type        = number
  description = "Initial gp3 storage in GiB."
  default     = 200
}

variable "db_max_allocated_storage_gb" {
  type        = number
  description = "Storage autoscaling ceiling in GiB."
  default     = 2000
}

variable "db_backup_retention_days" {
  type        = number
  description = "Days of automated backups (point-in-time recovery window)."
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "Keep 7 to 35 days of backups."
  }
}

variable "db_name" {
  type        = string
  description = "Database created on the instance (CIRCULATE_DATABASE_URL's path)."
  default     = "circulate"
}

variable "db_master_username" {
  type        = string
  description = "Master user; RDS generates its password and keeps it in Secrets Manager."
  default     = "circulate"
}

variable "db_max_connections" {
  type        = number
  description = "PostgreSQL max_connections: the connection budget of every process plus headroom (docs/operations/postgres-at-scale.md)."
  default     = 800
}

variable "db_statement_timeout_ms" {
  type        = number
  description = "statement_timeout: longer than any statement of a handler (the worker time limit is 120 s); migrations set their own."
  default     = 120000
}

variable "db_idle_in_transaction_timeout_ms" {
  type        = number
  description = "idle_in_transaction_session_timeout: a session idle inside a transaction this long is ended, releasing its locks (a wedged worker thread)."
  default     = 60000
}

# --- RabbitMQ --------------------------------------------------------------------------------------

variable "mq_engine_version" {
  type        = string
  description = "Amazon MQ for RabbitMQ engine version (3.13 or later: quorum queues)."
  default     = "3.13"
}

variable "mq_instance_type" {
  type        = string
  description = "Broker node instance type; the cluster has three (see docs/operations/scaling.md for sizing)."
  default     = "mq.m5.xlarge"
}

variable "mq_admin_username" {
  type        = string
  description = "The broker's one provisioned user; Terraform generates its password into Secrets Manager."
  default     = "circulate"
}

variable "mq_vhost" {
  type        = string
  description = "RabbitMQ virtual host the application uses (created by `circulate setup`)."
  default     = "circulate"
}
