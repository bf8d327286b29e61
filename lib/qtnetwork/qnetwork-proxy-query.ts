/** `QNetworkProxyQuery::QueryType`, with Qt's values. */
export enum QueryType {
  TcpSocket = 0,
  UdpSocket = 1,
  SctpSocket = 2,
  TcpServer = 100,
  UrlRequest = 101,
  SctpServer = 102,
}

/**
 * What a proxy is wanted for (Qt's QNetworkProxyQuery): a connection to a peer host and
 * port, or a server listening on a local port, with an optional protocol tag.
 */
export class QNetworkProxyQuery {
  static readonly QueryType = QueryType;

  private type: QueryType;
  private host: string;
  private peer: number;
  private local: number;
  private tag: string;

  /**
   * A query for a connection to `hostName`:`port` (type TcpSocket by default), or, when the
   * first argument is a number, for a server on that local port (type TcpServer).
   */
  constructor(
    hostOrLocalPort: string | number = '',
    portOrTag: number | string = -1,
    protocolTag = '',
    queryType?: QueryType,
  ) {
    if (typeof hostOrLocalPort === 'number') {
      this.type = queryType ?? QueryType.TcpServer;
      this.host = '';
      this.peer = -1;
      this.local = hostOrLocalPort;
      this.tag = typeof portOrTag === 'string' ? portOrTag : protocolTag;
    } else {
      this.type = queryType ?? QueryType.TcpSocket;
      this.host = hostOrLocalPort;
      this.peer = typeof portOrTag === 'number' ? portOrTag : -1;
      this.local = -1;
      this.tag = protocolTag;
    }
  }

  /** The kind of query. */
  queryType(): QueryType {
    return this.type;
  }

  /** Sets the kind of query. */
  setQueryType(type: QueryType): void {
    this.type = type;
  }

  /** The peer's host name (or address text). */
  peerHostName(): string {
    return this.host;
  }

  /** Sets the peer's host name. */
  setPeerHostName(host: string): void {
    this.host = host;
  }

  /** The peer's port; -1 when not set. */
  peerPort(): number {
    return this.peer;
  }

  /** Sets the peer's port. */
  setPeerPort(port: number): void {
    this.peer = port;
  }

  /** The local port of a server query; -1 when not set. */
  localPort(): number {
    return this.local;
  }

  /** Sets the local port. */
  setLocalPort(port: number): void {
    this.local = port;
  }

  /** The protocol tag (e.g. "http"); "" when not set. */
  protocolTag(): string {
    return this.tag;
  }

  /** Sets the protocol tag. */
  setProtocolTag(tag: string): void {
    this.tag = tag;
  }
}
