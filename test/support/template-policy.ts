/** Reading infra/aws/template.yaml's resources and IAM policies, for the tests that check them. */
import type { Template, TemplateResource } from '../../scripts/aws-template.js';

export interface PolicyStatement {
  /** The logical id of the AWS::IAM::Role the statement belongs to. */
  role: string;
  Effect: string;
  Action: string[];
  Resource: unknown[];
}

export const ofType = (t: Template, type: string): Array<[string, TemplateResource]> => Object.entries(t.Resources).filter(([, r]) => r.Type === type);

/** Every statement of every inline policy of every role, with Action and Resource always lists. */
export const policyStatements = (t: Template): PolicyStatement[] =>
  ofType(t, 'AWS::IAM::Role').flatMap(([role, r]) =>
    ((r.Properties as Record<string, any>).Policies ?? []).flatMap((policy: any) =>
      policy.PolicyDocument.Statement.map((s: any) => ({ role, Effect: s.Effect, Action: [].concat(s.Action), Resource: [].concat(s.Resource) })),
    ),
  );

export const subOf = (resource: unknown) => (resource as { 'Fn::Sub'?: string })['Fn::Sub'];
