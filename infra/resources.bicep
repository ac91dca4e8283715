// Everything Customer Sync runs on, in one resource group. No key is in any setting: the function app reaches
// Table Storage, Service Bus, its own host storage and Application Insights with its managed identity, through
// the role assignments at the end. test/unit/infra.test.ts holds the app settings below against the app's
// settings schema (shared/config.ts).
param environmentName string
param location string
param tags object
param authTenantId string
param authAudience string
param dataverseUrl string
param crmConflictPolicy string
param crmDeletionPolicy string
param alertWebhookHosts string
param consoleClientId string

var token = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var appName = 'func-${token}'
var queueName = 'customer-operations'
var deploymentContainer = 'app-package-${take(token, 32)}'
var login = environment().authentication.loginEndpoint // https://login.microsoftonline.com/

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${token}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${token}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true // telemetry is sent with the app's identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING)
  }
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st${token}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false // identities only: there is no key to leak
    supportsHttpsTrafficOnly: true
  }
  resource blobs 'blobServices' = {
    name: 'default'
    resource packages 'containers' = {
      name: deploymentContainer
    }
  }
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: 'sb-${token}'
  location: location
  tags: tags
  // Basic has what the app uses (queues, scheduled messages, dead-lettering) and no base charge.
  sku: { name: 'Basic', tier: 'Basic' }
  properties: {
    disableLocalAuth: true // no SAS keys: Entra ID only
    minimumTlsVersion: '1.2'
  }
  // As the README's "Why it is exact under failures" assumes: five deliveries, then the dead-letter sub-queue.
  resource queue 'queues' = {
    name: queueName
    properties: {
      maxDeliveryCount: 5
      lockDuration: 'PT30S'
      deadLetteringOnMessageExpiration: true
      defaultMessageTimeToLive: 'P14D'
    }
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${token}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true }
}

resource api 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: { type: 'SystemAssigned' }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: { minTlsVersion: '1.2' }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: { type: 'SystemAssignedIdentity' }
        }
      }
      scaleAndConcurrency: { maximumInstanceCount: 40, instanceMemoryMB: 2048 }
      runtime: { name: 'node', version: '20' }
    }
  }

  // The app's settings (shared/config.ts and the README's table). Identity-based connections throughout:
  // `<name>__accountName` / `__fullyQualifiedNamespace` are what the Functions host and the app read.
  resource settings 'config' = {
    name: 'appsettings'
    properties: {
      AzureWebJobsStorage__accountName: storage.name
      APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
      STORAGE_TABLE_ENDPOINT: storage.properties.primaryEndpoints.table
      SERVICEBUS_CONNECTION__fullyQualifiedNamespace: '${serviceBus.name}.servicebus.windows.net'
      CUSTOMER_OPERATIONS_QUEUE: queueName
      AUTH_ISSUER: '${login}${authTenantId}/v2.0'
      AUTH_AUDIENCE: authAudience
      AUTH_JWKS_URI: '${login}${authTenantId}/discovery/v2.0/keys'
      PUBLIC_BASE_URL: 'https://${appName}.azurewebsites.net'
      CRM_SYNC_SCHEDULE: '0 */5 * * * *'
      ALERTS_SCHEDULE: '0 */1 * * * *'
      DATAVERSE_URL: dataverseUrl
      CRM_CONFLICT_POLICY: crmConflictPolicy
      CRM_DELETION_POLICY: crmDeletionPolicy
      ALERT_WEBHOOK_HOSTS: alertWebhookHosts
      CONSOLE_CLIENT_ID: consoleClientId
      CONSOLE_TENANT_ID: authTenantId
    }
  }
}

// Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // host storage and the deployment package
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // the app's tables
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39' // doorbells
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0' // the queue trigger
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb' // telemetry with Entra ID
}

resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in [roles.storageBlobDataOwner, roles.storageTableDataContributor]: {
    name: guid(storage.id, api.id, role)
    scope: storage
    properties: {
      principalId: api.identity.principalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
    }
  }
]

resource serviceBusRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in [roles.serviceBusDataSender, roles.serviceBusDataReceiver]: {
    name: guid(serviceBus.id, api.id, role)
    scope: serviceBus
    properties: {
      principalId: api.identity.principalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
    }
  }
]

resource telemetryRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, api.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: api.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

output apiUrl string = 'https://${api.properties.defaultHostName}/api'
output apiPrincipalId string = api.identity.principalId
output applicationInsightsName string = appInsights.name
