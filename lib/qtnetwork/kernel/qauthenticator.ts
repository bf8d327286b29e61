/**
 * Credentials asked for by a proxy (Qt's QAuthenticator): a slot connected to
 * `proxyAuthenticationRequired` fills in `user` and `password`, and the socket retries.
 */
export class QAuthenticator {
  private userName = '';
  private secret = '';
  private realmText = '';
  private changed = false;

  /** The user name; "" until set. */
  user(): string {
    return this.userName;
  }

  /** Sets the user name. */
  setUser(user: string): void {
    this.userName = user;
    this.changed = true;
  }

  /** The password; "" until set. */
  password(): string {
    return this.secret;
  }

  /** Sets the password. */
  setPassword(password: string): void {
    this.secret = password;
    this.changed = true;
  }

  /** The realm the proxy named (HTTP Basic); "" for SOCKS5. */
  realm(): string {
    return this.realmText;
  }

  /** True until a user or password has been set (Qt's `isNull`). */
  isNull(): boolean {
    return !this.changed;
  }

  /** @internal Sets the realm from the proxy's challenge. */
  setRealmFromChallenge(realm: string): void {
    this.realmText = realm;
  }
}
