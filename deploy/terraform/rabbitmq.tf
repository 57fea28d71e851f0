# Amazon MQ for RabbitMQ as a three-node cluster across availability zones, behind one endpoint
# (Amazon MQ's load balancer), so CIRCULATE_AMQP_URL holds one amqps:// URL. Quorum queues, which
# `circulate setup` declares, replicate every queue over the three nodes.

resource "aws_mq_configuration" "circulate" {
  name           = "${local.name}-rabbitmq"
  description    = "Circulate: consumer timeout above the workers' time limit and broker delays"
  engine_type    = "RabbitMQ"
  engine_version = var.mq_engine_version

  # 30 minutes, stated rather than inherited: CIRCULATE_TIME_LIMIT_MS (2 min) and
  # CIRCULATE_BROKER_DELAY_MAX_MS (5 min) are sized to stay well below it.
  data = <<-CONF
    consumer_timeout = 1800000
  CONF
}

resource "aws_mq_broker" "circulate" {
  #checkov:skip=CKV_AWS_209:Amazon MQ for RabbitMQ does not accept encryption_options; its storage is always encrypted with an AWS-owned key.
  broker_name        = local.name
  engine_type        = "RabbitMQ"
  engine_version     = var.mq_engine_version
  host_instance_type = var.mq_instance_type
  deployment_mode    = "CLUSTER_MULTI_AZ"

  subnet_ids          = var.private_subnet_ids
  security_groups     = [aws_security_group.broker.id]
  publicly_accessible = false

  configuration {
    id       = aws_mq_configuration.circulate.id
    revision = aws_mq_configuration.circulate.latest_revision
  }

  # Required for RabbitMQ 3.13 and later; patches land in the maintenance window.
  auto_minor_version_upgrade = true
  apply_immediately          = false

  maintenance_window_start_time {
    day_of_week = "SUNDAY"
    time_of_day = "04:00"
    time_zone   = "UTC"
  }

  logs {
    general = true
  }

  # The one user Amazon MQ provisions for RabbitMQ; its generated password is in Secrets Manager.
  user {
    username = var.mq_admin_username
    password = random_password.rabbitmq.result
  }

  depends_on = [aws_cloudwatch_log_resource_policy.amazon_mq]
}

# Amazon MQ writes the broker's general log to CloudWatch only with this resource policy.
data "aws_iam_policy_document" "amazon_mq_logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["arn:${local.partition}:logs:${var.aws_region}:${local.account_id}:log-group:/aws/amazonmq/*"]
    principals {
      type        = "Service"
      identifiers = ["mq.amazonaws.com"]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "amazon_mq" {
  policy_name     = "${local.name}-amazon-mq-logs"
  policy_document = data.aws_iam_policy_document.amazon_mq_logs.json
}
