"""The console's two languages: English text is the key, Chinese its translation.

Templates write ``_("English text")``; ``gettext(lang)`` answers the text in ``lang``. A test
reads every ``_("…")`` of the templates and checks each has its Chinese entry here, so both
languages stay complete. Transaction types are named, never shown as a bare method id:
``TX_TYPES`` gives each its label in both languages.
"""

from __future__ import annotations

from collections.abc import Callable

LANGS = ("zh", "en")
DEFAULT = "zh"

ZH: dict[str, str] = {
    "Rongxin console": "融信控制台",
    "Overview": "概览", "Blocks": "区块", "Transactions": "交易", "Accounts": "账户",
    "Contracts": "合约", "Works": "作品", "Evidence and cases": "存证与案件", "Nodes": "节点",
    "Search": "搜索", "Search by height, hash, transaction id, account, work id or title": "按高度、哈希、交易号、账户、作品号或标题搜索",
    "Language": "语言", "Chain": "链", "Height": "高度", "Live height": "实时高度", "Head block": "最新区块",
    "Validators": "验证节点", "Peers online": "在线节点", "Mempool": "交易池", "View": "视图",
    "This node": "本节点", "Role": "角色", "Organisation": "机构",
    "Recent blocks": "最近区块", "Recent transactions": "最近交易", "More": "更多",
    "Committed TPS per block": "每个区块的确认 TPS",
    "Commit latency per block with transactions (ms)": "含交易区块的确认时延（毫秒）",
    "Commit latency: from a block's proposal to the proposal carrying the QC that commits it (2-chain rule).":
        "确认时延：从区块提出到携带确认该区块的仲裁证书（QC）的区块提出（两链规则）。",
    "No data yet": "暂无数据",
    "Hash": "哈希", "Time (UTC)": "时间（UTC）", "Proposer": "提议者", "Txs": "交易数",
    "Parent": "父区块", "Transactions root": "交易根", "Results root (certifies height)": "结果根（所证明的高度）",
    "Quorum certificate": "仲裁证书", "Signers": "签名者", "Previous": "上一个", "Next": "下一个",
    "Older": "更早", "Newer": "更新", "and %(n)s more": "另有 %(n)s 笔",
    "Type": "类型", "Sender": "发送者", "Status": "状态", "Block": "区块", "Index": "序号",
    "Receipt": "回执", "Code": "代码", "Result": "结果", "Events": "事件", "Payload": "载荷",
    "Keys": "索引键", "Data": "数据", "Accepted": "已接受", "Refused": "被拒绝", "Pending": "待确认",
    "committed": "已确认", "pending": "待确认",
    "Proofs": "证明", "Inclusion proof (transaction in its block)": "包含证明（交易在其区块中）",
    "Receipt proof (what it did, certified later)": "回执证明（执行结果，由后续区块证明）",
    "Certified in block": "证明所在区块", "Path": "路径", "Root": "根", "Size": "大小",
    "Transaction with its proofs (JSON)": "交易及其证明（JSON）", "Proof bundle (JSON)": "证明包（JSON）",
    "Protected evidence or case transaction": "受保护的存证或案件交易",
    "Only its parties, courts and regulators may read it; this public view shows its place on the chain and its proofs.":
        "仅当事方、法院和监管机构可读；公开视图只显示其在链上的位置及证明。",
    "Account": "账户", "Name": "名称", "Business role": "业务角色", "Certificate": "证书",
    "Registered at height": "登记高度", "Not a registered user": "不是已登记用户",
    "Fungible tokens": "同质化通证", "Balance": "余额", "Symbol": "代号",
    "Non-fungible tokens": "非同质化通证", "Class": "类别", "Token": "通证", "Owner": "持有者",
    "Registered works": "已登记作品", "Registered users": "已登记用户", "Token activity": "通证记录",
    "None": "无", "Amount": "数量", "From": "来自", "To": "至",
    "Contract": "合约", "Version": "版本", "Lifecycle history": "生命周期历史", "Step": "步骤",
    "Audit log": "审计日志", "Actor": "操作者", "Versions": "版本列表", "No user contracts yet": "暂无用户合约",
    "Work": "作品", "Title": "标题", "Holder": "持有人", "Media type": "媒体类型", "Conflicts": "冲突",
    "Registration transaction": "登记交易", "Certificate (PDF)": "证书（PDF）",
    "Registration record (JSON)": "登记记录（JSON）", "Authors": "作者", "Created": "创作日期", "Licence": "许可",
    "Earlier work": "在先作品", "Score": "相似度", "Method": "方法", "No works registered yet": "暂无登记作品",
    "Copyright certificate token": "版权证书通证",
    "Evidence filings and case steps are private to their parties, courts and regulators (docs/api.md §7). "
    "This public view lists their transactions, blocks and proofs only; their contents and the package download "
    "need a signed-in view.":
        "存证提交和案件步骤仅对当事方、法院和监管机构公开（docs/api.md §7）。公开视图仅列出其交易、区块和证明；"
        "内容及证据包下载需登录视图。",
    "Recent protected transactions": "最近的受保护交易", "None in the recent blocks": "最近区块中没有",
    "Validator": "验证节点", "Online": "在线", "Offline": "离线", "yes": "是", "no": "否",
    "Proposed (recent window)": "提出区块数（近期窗口）", "Missed turns (recent window)": "错过轮次（近期窗口）",
    "Missed turns in a row (on chain)": "连续错过轮次（链上）", "Other peers": "其他节点",
    "Recent window: the last %(n)s blocks.": "近期窗口：最近 %(n)s 个区块。",
    "Member organisations": "成员机构", "Roles": "角色",
    "Results for": "搜索结果：", "Nothing found": "未找到", "block": "区块", "transaction": "交易",
    "account": "账户", "work": "作品", "contract": "合约",
    "Not found": "未找到", "Bad request": "请求无效", "Back to the overview": "返回概览",
    "supervisor": "监管节点", "consensus": "共识节点", "full": "全节点",
    "Page": "页", "ok": "成功", "By": "操作者", "Minter": "铸造者", "Burned": "已销毁", "Active": "有效",
    "Provenance": "流转记录", "Provenance of the certificate token": "证书通证的流转记录",
    # the signed-in capture page (api/console/signed.py)
    "Capture a page": "网页取证", "Address": "网址", "Capture and file": "取证并提交", "Identity": "身份",
    "Choose key.pem and cert.pem from your identity folder": "从身份文件夹中选择 key.pem 和 cert.pem",
    "Forget the key": "清除密钥", "No identity loaded": "未加载身份", "Identity loaded": "已加载身份",
    "For legal centres. Your identity's key is read into this page's memory only: it is never sent to the node and "
    "never stored; closing or reloading the page forgets it. The page signs each request itself.":
        "供法律服务机构使用。身份私钥只读入本页面的内存：不会发送给节点，也不会保存；关闭或刷新页面即清除。每个请求由本页面自行签名。",
    "Progress": "进度", "waiting": "等待", "running": "进行中", "done": "完成", "failed": "失败", "not run": "未执行", "not reported": "未报告",
    "artefacts": "个取证文件", "matches": "处匹配", "works": "件作品",
    "Environment check (on the node)": "环境检查（节点上）", "Capture in a clean browser (on the node)": "在干净浏览器中取证（节点上）",
    "Matching against the registry (on the node)": "与登记作品比对（节点上）",
    "Manifest checked and signed in this page": "清单已在本页面核对并签名", "Filing": "提交存证",
    "Confirmed on chain": "已上链确认",
    "The node checks its environment, captures and matches in one call: this page learns how each went when the node "
    "answers.": "节点在一次调用中完成环境检查、取证和比对：节点答复后本页面才知道各步结果。",
    "Error": "错误", "The signing library is not installed on this node (make console-js).":
        "本节点未安装签名库（make console-js）。",
    "Evidence": "证据", "Evidence id": "证据编号", "Transaction": "交易", "Cases": "案件", "Matches": "比对结果",
    "Found in": "发现于", "Work at (s)": "作品位置（秒）", "Capture at (s)": "取证位置（秒）", "Artefacts": "取证文件",
    "Download the evidence package": "下载证据包", "Preparing the package": "正在准备证据包",
    "Save the package again": "再次保存证据包", "In the browser": "浏览器端", "served by this node": "由本节点提供",
    # the other roles' signed-in pages (api/console/roles.py)
    "Your identity's key is read into this page's memory only: it is never sent to the node and never stored; "
    "closing or reloading the page forgets it. The page signs each request itself.":
        "身份私钥只读入本页面的内存：不会发送给节点，也不会保存；关闭或刷新页面即清除。每个请求由本页面自行签名。",
    "Register a work": "作品登记", "Register": "登记", "Registered": "已登记", "The work": "作品", "File": "文件",
    "Originality pledge": "原创承诺", "picture": "图片", "audio": "音频", "video": "视频", "text": "文字",
    "Work id": "作品编号", "Registration certificate (PDF)": "登记证书（PDF）",
    "Upload, fingerprint and matching (on the node)": "上传、指纹提取与比对（节点上）",
    "Registration checked and signed in this page": "登记内容已在本页面核对并签名",
    "For rights holders. The node fingerprints and stores the file, matches it against every registered work and "
    "countersigns; this page signs the originality pledge and the registration, then the proof of the registration "
    "for its certificate.": "供权利人使用。节点提取文件指纹并保存文件，与所有已登记作品比对并副署；本页面签署原创承诺和登记交易，再签署登记证明以生成证书。",
    "This identity is not a rights holder: only rights holders register works.": "该身份不是权利人：只有权利人可以登记作品。",
    "Verify a package": "证据包核验", "Verify": "核验", "Verifying": "正在核验", "Evidence package": "证据包",
    "Report": "核验报告", "Check": "核验项", "PASS": "通过", "FAIL": "失败", "What it establishes": "证明内容",
    "Weighed under": "依据", "Why not": "未通过原因", "Statements": "链上陈述", "Filer": "提交方",
    "Consortium root": "联盟根证书", "Every check holds": "全部核验通过", "Verification failed": "核验未通过",
    "For courts and the regulator. The node runs the offline court verifier on the package you upload against its "
    "consortium root, keeps nothing and shows every check. To rely on nobody but the root you hold, run rongxin "
    "evidence verify on your own computer: it is the same verifier.":
        "供法院和监管机构使用。节点以其联盟根证书对上传的证据包运行离线核验程序，不保存任何内容，并逐项显示核验结果。"
        "若只信任自己持有的根证书，请在本机运行 rongxin evidence verify：这是同一个核验程序。",
    "This identity is not a court or the regulator: only they verify packages on the node.":
        "该身份不是法院或监管机构：只有它们可以在节点上核验证据包。",
    "Governance": "治理投票", "Proposals": "提案", "Proposal": "提案", "Action": "操作", "Policy": "表决规则",
    "Approvals": "赞成", "Rejections": "反对", "Expiry": "截止高度", "Vote": "投票", "Approve": "赞成", "Reject": "反对",
    "Voting": "正在投票", "Your vote is recorded": "投票已记录", "already voted": "已投票", "No proposals yet": "暂无提案",
    "Choose the key and its certificate (PEM)": "选择私钥及其证书（PEM）",
    "This key may vote on none of the open proposals.": "该密钥无权对任何未决提案投票。",
    "For supervisors (and, under an organisations policy, the validators and admin users of the organisations it "
    "counts). Load a supervisor node's sm2.key.pem and sm2.crt.pem, or an admin user's key.pem and cert.pem: the "
    "page shows the vote buttons on the proposals that key may vote on and signs the gov.vote transaction itself.":
        "供监管节点使用（在按机构表决的规则下，也供所计机构的验证节点和管理员用户使用）。加载监管节点的 sm2.key.pem 和 "
        "sm2.crt.pem，或管理员用户的 key.pem 和 cert.pem：页面只在该密钥有权投票的提案上显示投票按钮，并自行签署 gov.vote 交易。",
}

TX_TYPES: dict[str, tuple[str, str]] = {
    "kv.set": ("Key-value write", "键值写入"),
    "user.register": ("User registration", "用户登记"), "user.revoke": ("User revocation", "用户吊销"),
    "gov.propose": ("Governance proposal", "治理提案"), "gov.vote": ("Governance vote", "治理投票"),
    "node.join": ("Node join request", "节点加入申请"), "node.certify": ("Node certification", "节点认证"),
    "node.exit": ("Node exit", "节点退出"), "node.evidence": ("Misbehaviour evidence", "节点违规证据"),
    "ft.issue": ("Token issue", "通证发行"), "ft.mint": ("Token mint", "通证增发"),
    "ft.transfer": ("Token transfer", "通证转账"), "ft.transfer_from": ("Token transfer on behalf", "代理转账"),
    "ft.approve": ("Token allowance", "通证授权"), "ft.burn": ("Token burn", "通证销毁"),
    "ft.burn_from": ("Token burn on behalf", "代理销毁"), "ft.freeze": ("Account freeze", "账户冻结"),
    "ft.unfreeze": ("Account unfreeze", "账户解冻"), "ft.set_issuer": ("Issuer change", "发行方变更"),
    "nft.create_class": ("NFT class creation", "NFT 类别创建"), "nft.mint": ("NFT mint", "NFT 铸造"),
    "nft.transfer": ("NFT transfer", "NFT 转让"), "nft.approve": ("NFT approval", "NFT 授权"),
    "nft.burn": ("NFT burn", "NFT 销毁"), "nft.license": ("NFT licence", "NFT 许可"),
    "nft.revoke_license": ("NFT licence revocation", "NFT 许可撤销"),
    "nft.set_class_owner": ("NFT class owner change", "NFT 类别所有者变更"),
    "nft.set_minters": ("NFT minters change", "NFT 铸造者变更"), "nft.set_operator": ("NFT operator", "NFT 操作员"),
    "contract.upload": ("Contract upload", "合约上传"), "contract.install": ("Contract install", "合约安装"),
    "contract.init": ("Contract initialisation", "合约初始化"), "contract.upgrade": ("Contract upgrade", "合约升级"),
    "contract.freeze": ("Contract freeze", "合约冻结"), "contract.unfreeze": ("Contract unfreeze", "合约解冻"),
    "contract.destroy": ("Contract destruction", "合约销毁"), "contract.permit": ("Contract permissions", "合约权限"),
    "contract.call": ("Contract call", "合约调用"),
    "works.register": ("Work registration", "作品登记"),
    "evidence.file": ("Evidence filing", "证据提交"), "case.open": ("Case opened", "案件立案"),
    "case.attach": ("Evidence attached to case", "证据并案"), "case.move": ("Case step", "案件流转"),
    "mpc.register": ("MPC party registration", "多方计算参与方登记"), "mpc.dataset": ("MPC dataset", "多方计算数据集"),
    "mpc.propose": ("MPC computation proposal", "多方计算提案"), "mpc.amend": ("MPC proposal amendment", "多方计算提案修订"),
    "mpc.approve": ("MPC approval", "多方计算批准"), "mpc.commit": ("MPC commitment", "多方计算承诺"),
    "mpc.record": ("MPC result record", "多方计算结果记录"),
}


def gettext(lang: str) -> Callable[..., str]:
    """``_(text, **values)`` in ``lang``: the Chinese entry (or the English text), with
    ``%(name)s`` filled from ``values``."""
    zh = lang == "zh"

    def _(text: str, **values: object) -> str:
        out = ZH.get(text, text) if zh else text
        return out % values if values else out

    return _


def tx_label(tx_type: str | None, lang: str) -> str:
    """A transaction type's name in ``lang``; an unknown type is shown by its own name."""
    if not tx_type:
        return ZH["Protected evidence or case transaction"] if lang == "zh" else "Protected evidence or case transaction"
    pair = TX_TYPES.get(tx_type)
    if pair is None:
        return tx_type
    return pair[1] if lang == "zh" else pair[0]
