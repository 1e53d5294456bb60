// The example onboarding workflow's records, with the JSON field names of the Go structs in
// examples/internal/onboarding, so a Go starter and a TypeScript worker understand each other.

export interface Customer {
  ID: string;
  Name: string;
  Email: string;
  Card: string;
  Address: string;
}

export interface Assessment {
  CustomerID: string;
  Risk: string;
  MaskedCard: string;
  Contact: string;
}

export interface Approval {
  By: string;
  Note: string;
}

export interface Status {
  Stage: string;
  Customer: string;
}

export interface Result {
  CustomerID: string;
  Welcome: string;
  Contact: string;
  MaskedCard: string;
  Risk: string;
  ApprovedBy: string;
  Note: string;
}
