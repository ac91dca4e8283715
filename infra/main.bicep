// Customer Sync on Azure (azd layout): a resource group holding everything resources.bicep creates.
// `azd up` asks for the environment name and location; the rest has defaults (main.parameters.json maps them
// from azd environment variables, e.g. `azd env set DATAVERSE_URL https://contoso.crm4.dynamics.com`).
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('Name of the azd environment; prefixes the resource group and feeds the resource names.')
param environmentName string

@minLength(1)
@description('Azure region for every resource (one that offers the Flex Consumption plan).')
param location string

@description('Entra ID tenant that issues the tokens channels and operators call the API with.')
param authTenantId string = tenant().tenantId

@description('Application ID URI of the API app registration (the tokens\' audience).')
param authAudience string = 'api://customer-sync'

@description('Dataverse environment URL, e.g. https://contoso.crm4.dynamics.com; empty leaves coupling off.')
param dataverseUrl string = ''

@allowed(['None', 'SendToCrm', 'GetFromCrm'])
param crmConflictPolicy string = 'None'

@allowed(['None', 'Restore', 'RemoveCoupling', 'Delete'])
param crmDeletionPolicy string = 'None'

@description('Hosts alert webhooks may call (comma-separated); empty allows none.')
param alertWebhookHosts string = ''

@description('Client id of the operator console\'s single-page app registration; empty: no Entra ID sign-in yet.')
param consoleClientId string = ''

var tags = { 'azd-env-name': environmentName }

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module resources 'resources.bicep' = {
  name: 'resources'
  scope: rg
  params: {
    environmentName: environmentName
    location: location
    tags: tags
    authTenantId: authTenantId
    authAudience: authAudience
    dataverseUrl: dataverseUrl
    crmConflictPolicy: crmConflictPolicy
    crmDeletionPolicy: crmDeletionPolicy
    alertWebhookHosts: alertWebhookHosts
    consoleClientId: consoleClientId
  }
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output API_URL string = resources.outputs.apiUrl
output API_PRINCIPAL_ID string = resources.outputs.apiPrincipalId
output APPLICATIONINSIGHTS_NAME string = resources.outputs.applicationInsightsName
