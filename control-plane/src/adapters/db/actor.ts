/**
 * Who made a change, as the audit log names them: `token:{id}` for an
 * operator's API token, `device:{id}` for a device, `system` for the control
 * plane itself (start-up, automatic decisions).
 */
export type Actor = string;

export const SYSTEM_ACTOR: Actor = 'system';
export const tokenActor = (tokenId: string): Actor => `token:${tokenId}`;
export const deviceActor = (deviceId: string): Actor => `device:${deviceId}`;
