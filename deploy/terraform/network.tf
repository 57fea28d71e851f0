# Security groups: PostgreSQL and RabbitMQ admit only the workloads' security groups, on their
# ports, and nothing else (no CIDR ranges, no egress: neither service opens connections out).

resource "aws_security_group" "database" {
  name        = "${local.name}-postgres"
  description = "Circulate PostgreSQL: admits the API, workers, relay, sweeper and exporter only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "database_from_workloads" {
  for_each = toset(var.workload_security_group_ids)

  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from Circulate workloads (${each.value})"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_security_group" "broker" {
  name        = "${local.name}-rabbitmq"
  description = "Circulate RabbitMQ: admits the API, workers, relay, sweeper and exporter only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "broker_amqps_from_workloads" {
  for_each = toset(var.workload_security_group_ids)

  security_group_id            = aws_security_group.broker.id
  description                  = "AMQP over TLS from Circulate workloads (${each.value})"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 5671
  to_port                      = 5671
}

# The management API (HTTPS): `circulate setup` creates the vhost and rebalances queue leaders,
# the exporter and the console read queue depths.
resource "aws_vpc_security_group_ingress_rule" "broker_management_from_workloads" {
  for_each = toset(var.workload_security_group_ids)

  security_group_id            = aws_security_group.broker.id
  description                  = "RabbitMQ management API over HTTPS from Circulate workloads (${each.value})"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_db_subnet_group" "database" {
  name        = "${local.name}-postgres"
  description = "Private subnets of the EKS VPC for Circulate PostgreSQL"
  subnet_ids  = var.private_subnet_ids
}
